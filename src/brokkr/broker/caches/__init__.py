"""What this broker process keeps in memory between requests: immutable deployment objects and
the target-state ETags it may trust. Told of changes by the unit of work after each commit and
by the change listener for other brokers. No I/O, no SQL."""
