"""Export one chargeback file to the card companies: the step chargeback_export maps over its files.

For the JSON object at ``key``: download it and take its sha256 → decide from ``ops.file_control``
(new, exported before, or the same name with other content, which is quarantined) → validate
every record (a card number must already be masked; a brand needs a destination) → plan batches
of at most four CSV files (one per brand, at most ``max_rows_per_file`` rows) → upload each file
not yet in ``ops.delivery`` to its card company's FTP or FTPS server (``NAME.part``, size check,
rename) → archive the input under ``processed/``. A bad file is quarantined with its report and
the task fails without retries. Mapped over the files a run found::

    ChargebackExportOperator.partial(task_id="export_file", map_index_template="{{ file_name }}").expand(key=keys)

The XCom is the outcome (status, counts, each delivery's file name and rows), never record data.
Lineage: the object in, each file delivered out.
"""

from __future__ import annotations

import logging
from typing import Any

from finflows import inbox, settings
from finflows.operators.base import S3FileOperator

log = logging.getLogger(__name__)


class ChargebackExportOperator(S3FileOperator):
    """Turn one chargeback file into CSV files on the card companies' servers.

    :param key: the object's key (templated; usually mapped with ``expand``). Its name is put in
        the context as ``file_name`` for ``map_index_template="{{ file_name }}"``.
    :param bucket: the bucket (templated; default ``FINFLOWS_CHARGEBACK_BUCKET``).
    :param destinations: the destinations file (card brand → FTP/FTPS connection, directory and
        protocol; default ``include/chargeback_destinations.json``).
    :param postgres_conn_id: the finance database (default ``postgres_finance``).
    :param aws_conn_id: the S3 connection (default ``aws_finflows``).
    """

    def __init__(self, *, destinations: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.destinations = destinations
        self._uploaded: list[tuple[str, str, str]] = []  # (conn id, protocol, path) delivered by this run

    def default_bucket(self) -> str:
        return settings.chargeback_bucket()

    def process(self, **hooks: Any) -> dict:
        from pathlib import Path

        from finflows.flows.chargeback_export import chargeback

        config = chargeback.load_config(Path(self.destinations)) if self.destinations else chargeback.load_config()
        outcome = inbox.run(chargeback.Chargebacks(config), self.key, **hooks)
        if outcome.seen is not inbox.Seen.NEW:
            log.info("%s: %d file(s) delivered before, none uploaded again", outcome.file_name, len(outcome.deliveries))
        dests = config.destinations
        self._uploaded = [
            (dests[d.brand].conn_id, dests[d.brand].protocol, f"{dests[d.brand].directory.rstrip('/')}/{d.file_name}")
            for d in outcome.deliveries
            if d.uploaded
        ]
        return outcome.as_dict()

    def _outputs(self) -> list:
        """Each file this run delivered (none for a file exported before)."""
        from finflows import lineage

        return [lineage.ftp_file(conn_id, path, protocol) for conn_id, protocol, path in self._uploaded]
