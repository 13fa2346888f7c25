"""E-mail: IMAP reading with UID checkpoints and SMTP notifications sent at most once."""
