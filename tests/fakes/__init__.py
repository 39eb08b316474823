"""Test doubles served over real HTTP (a fake kube-apiserver for the agent's tests), and a TCP
gate that plays a broker outage."""
