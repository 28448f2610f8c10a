"""refd's networking, libnetwork's container network model: a controller (controller.py)
over networks, endpoints and sandboxes (model.py), IPAM apart from drivers (ipam.py), the
per-container plumbing (sandbox.py, attachments.py), and drivers (drivers/: bridge, overlay,
remote; host and null in controller.py), with the bridge's firewall and published ports
(firewall.py, portmap.py), the overlay's cluster store (kvstore.py) and plugin discovery
(plugins.py)."""
