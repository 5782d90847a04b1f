"""vcyclectl: keeps fleets of worker VMs alive on OpenStack, EC2, GCE and a simulated local
cloud."""

__version__ = "0.1.0"
