"""The HTTP layer: parse requests, call the registry core, render responses."""
