"""The hypervisor adapter: one narrow interface, a libvirt implementation behind it."""
