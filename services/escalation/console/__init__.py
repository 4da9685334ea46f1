"""The web console for responders at `/ui` (served by escalation, so by `tocsin up` too).

Server-rendered with Jinja2, no build step, every action a plain HTML form (works without
JavaScript); a small script only refreshes the incident list in place. People log in with a
personal API key or a password (argon2 hash in the config file); the session lives in
`console_sessions` (the cookie holds a random token, the store its digest), and carries the
CSRF token every form must send back. Actions go through the same engine calls as the API, are
checked against the same policy table (tocsin.runtime.access.POLICY, by the API route they
mirror) and recorded in the same audit log."""
