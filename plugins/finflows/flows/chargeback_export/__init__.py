"""chargeback_export: chargeback data in S3 → at most four CSV files per batch → card companies' FTP servers."""
