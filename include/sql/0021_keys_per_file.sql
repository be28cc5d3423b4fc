-- Every file names the keys that made and checked it (issue #44): the bank key a payment file was
-- encrypted to and our key that signed it (chosen by the processing date from banks.yaml's key
-- windows), and the bank key whose signature a return file carried.
ALTER TABLE pay.batch
    ADD COLUMN encrypted_to text CHECK (encrypted_to ~ '^[0-9A-F]{40}$'),
    ADD COLUMN signed_with  text CHECK (signed_with ~ '^[0-9A-F]{40}$');
ALTER TABLE ops.file_control
    ADD COLUMN verified_with text CHECK (verified_with ~ '^[0-9A-F]{40}$');
