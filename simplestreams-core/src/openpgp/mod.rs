//! OpenPGP: verifying and making clear-signed (`.sjson`) and detached (`.json.gpg`) signatures.
