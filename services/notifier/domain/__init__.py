"""The notifier's pure logic: the retry rule, per-contact rate limits with bundling, page texts,
SMS replies and voice keys, phone numbers and signatures. No I/O; the delivery loop and the
inbound routes call it."""
