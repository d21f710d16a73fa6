"""Reports that join the inventory and the metrics store and hand plain data to the engines."""
