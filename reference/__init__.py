"""The reference container runtime: refd (engine), refctl (client), refrun (OCI runtime).

Sub-packages follow the architecture: engine, network, image, oci, cgroups, linux (the kernel
boundary) and cli (entry points). Entry points import lazily: start-up time is part of the product.
"""
