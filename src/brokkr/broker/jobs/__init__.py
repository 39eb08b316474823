"""Background loops started and stopped with the broker (app.Runtime). Each run is a service
call that is safe with several brokers on one database (D21); the periodic jobs also run only
once per interval per database (``periodic``), however many brokers and workers share it. A
failed run is logged and the next one retries. No SQL here; the one outbound HTTP client
(webhook deliveries) lives in ``brokkr.broker.webhook_sender``."""
