"""The Brokkr agent: runs in a cluster and makes it match the broker's target state.

Contract: talks to the broker only through ``brokkr.client`` and shares only ``brokkr.common``;
only ``brokkr.agent.kube`` may import lightkube. ``manifests``, ``inventory``, ``backoff`` and
``decisions`` are pure (no I/O, no clock reads, no randomness unless injected).
"""
