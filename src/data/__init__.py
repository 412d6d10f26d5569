"""LightningDataModules: one shared base, and per dataset only what differs (source, channels)."""
