"""Which template version a user's locale gets: the most specific locale the template has.

Locales are compared case-insensitively, with `_` and `-` the same (`fr_CA` is `fr-CA`). The chain
for a user in `fr-CA` of a project whose default locale is `en`:

    fr-CA → fr → en → the newest version in any locale

so a user never gets nothing while the template has some version: the last resort is the version
saved last, whatever its locale.
"""


def locale_normal(locale: str) -> str:
    """`fr_CA`, `FR-ca` and `fr-CA` all read `fr-ca`: the form locales are compared in."""
    return (locale or "").strip().replace("_", "-").lower()


def locale_chain(*, locale: str, default_locale: str) -> list[str]:
    """The locales to try in order (normalised): the locale and each shorter prefix of it, then the
    project's default locale and its prefixes, without repeats."""
    chain: list[str] = []
    for wanted in (locale, default_locale):
        parts = locale_normal(wanted).split("-")
        for end in range(len(parts), 0, -1):
            candidate = "-".join(parts[:end])
            if candidate and candidate not in chain:
                chain.append(candidate)
    return chain
