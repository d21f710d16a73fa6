"""The reclamation workflow: cases in the database, real libvirt actions and e-mail."""
