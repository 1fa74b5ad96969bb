"""The public credit portal: HTML pages, templates, static assets and translations (docs/portal.md)."""
