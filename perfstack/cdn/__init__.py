"""Cloudflare: the CDN component (cache, compression and image rules) and the deploy-time purge.

The purge (``perfstack cdn purge``, also ``python -m perfstack.cdn purge``) is split by concern:

* :mod:`.purge`: the command line, input checks, the order of steps, exit statuses;
* :mod:`.manifest`: asset manifests and which URLs changed between two of them;
* :mod:`.limits`: each plan's purge limits and the token buckets that pace requests;
* :mod:`.api`: one purge request through the official ``cloudflare`` SDK, failures classified;
* :mod:`.runner`: batches sent under the limits, with retries and backoff;
* :mod:`.origin`: ``--wait-for`` before the purge and ``--verify`` after it;
* :mod:`.report`: progress, summary and ``--json``, with the API token redacted from all output.

Nothing here is imported by this package itself, so ``import perfstack.cdn`` stays cheap.
"""
