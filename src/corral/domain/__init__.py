"""Plain typed data shared by every layer: what a host, a VM, a disk, an event is."""
