"""Examples of extending finflows (not deployed: nothing here is in ``dags/`` or ``plugins/``)."""
