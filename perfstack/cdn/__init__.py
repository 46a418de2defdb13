"""Cloudflare: the CDN component (cache, compression and image rules) and the deploy-time purge."""
