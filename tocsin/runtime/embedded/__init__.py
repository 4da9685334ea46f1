"""The embedded adapters: a durable bus and a document store on SQLite files, so that the whole
pipeline runs in one process (`tocsin up`) with the same domain code and handlers."""
