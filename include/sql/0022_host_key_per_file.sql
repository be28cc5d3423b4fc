-- The host key the bank's SFTP server showed when a file went to it or came from it (issue #44):
-- a rotation of the server's key is then visible file by file ("ssh-ed25519 SHA256:…").
ALTER TABLE pay.batch ADD COLUMN host_key text;
ALTER TABLE ops.file_control ADD COLUMN host_key text;
