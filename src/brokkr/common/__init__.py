"""What two or more Brokkr programs share. Imports nothing else from brokkr."""
