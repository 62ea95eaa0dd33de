"""Kernel adapters: the real `Firewall` (nftables), `Shaper` (tc), neighbours, DHCP sniffing."""
