"""card_reconciliation: acquirer statements (FTPS, S3) → the card dimensional model, archived, never twice."""
