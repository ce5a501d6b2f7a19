-- A manual rotation's version names the request that made it (the message's
-- correlation id), so a request redelivered after a crash between the reply and the
-- offset commit finds its version instead of adding another: rotated once, one new
-- version. Versions from create, restore and the auto-rotation sweep have none.
ALTER TABLE crypto.key_versions ADD COLUMN rotate_request_id text;
CREATE UNIQUE INDEX key_versions_rotate_request ON crypto.key_versions (tenant, name, rotate_request_id)
    WHERE rotate_request_id IS NOT NULL;
