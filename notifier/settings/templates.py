"""Rendering the tenants' templates (apps/templates/rendering.py): limits and the preview's render
processes. Imported by base.py.
"""

from notifier.settings.environment import env

# Templates are written by API key holders and rendered on our servers: one channel's rendering
# stops with an error (preview: 422 template_render_error; sending: failed, template_error) past
# this much output (or any one value a filter builds; 8x it for all of them) or time. A
# legitimate notification is far below both.
NOTIFIER_TEMPLATE_MAX_RENDERED_BYTES = env.int("NOTIFIER_TEMPLATE_MAX_RENDERED_BYTES", default=1024 * 1024)
NOTIFIER_TEMPLATE_MAX_RENDER_SECONDS = env.float("NOTIFIER_TEMPLATE_MAX_RENDER_SECONDS", default=2.0)
# Compiled template parts kept per process for reuse, by estimated size (least recently used out).
NOTIFIER_TEMPLATE_CACHE_MAX_BYTES = env.int("NOTIFIER_TEMPLATE_CACHE_MAX_BYTES", default=64 * 1024 * 1024)
# A preview renders a template no one has sent yet: it runs in a separate render process, so
# whatever it does, the web process stays up. Each web process starts at most this many (on first
# use, kept for the next ones); a preview waits up to QUEUE_SECONDS for a free one (then 503).
NOTIFIER_TEMPLATE_PREVIEW_PROCESSES = env.int("NOTIFIER_TEMPLATE_PREVIEW_PROCESSES", default=2)
NOTIFIER_TEMPLATE_PREVIEW_QUEUE_SECONDS = env.float("NOTIFIER_TEMPLATE_PREVIEW_QUEUE_SECONDS", default=10.0)
# The memory a render process may take beyond what it has once started (its RLIMIT_AS).
NOTIFIER_TEMPLATE_PREVIEW_MEMORY_BYTES = env.int("NOTIFIER_TEMPLATE_PREVIEW_MEMORY_BYTES", default=256 * 1024 * 1024)
