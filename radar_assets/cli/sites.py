"""``radar-assets sites``: the dynamic site dimension of the site x day partitions."""

from __future__ import annotations

import click

from radar_assets.cli.context import instance


@click.group()
def sites() -> None:
    """The dynamic site dimension of the site x day partitions."""


@sites.command("add")
@click.argument("site_ids", nargs=-1, required=True)
def sites_add(site_ids: tuple[str, ...]) -> None:
    """Add sites (e.g. KLOT KTLX) to the site dimension; no deploy needed."""
    from radar_assets.defs.partitions import sites_partitions
    from radar_assets.lib.sites import UnknownSiteError, site

    ids = []
    for sid in site_ids:
        try:
            ids.append(site(sid).id)
        except UnknownSiteError as exc:
            raise click.BadParameter(str(exc), param_hint="SITE_IDS") from exc
    inst = instance()
    existing = set(inst.get_dynamic_partitions(sites_partitions.name))
    new = [s for s in dict.fromkeys(ids) if s not in existing]
    if new:
        inst.add_dynamic_partitions(sites_partitions.name, new)
    click.echo(
        f"added {len(new)} site(s): {' '.join(new) or '-'}; sites now: {' '.join(sorted(existing | set(new)))}"
    )


@sites.command("list")
def sites_list() -> None:
    """List the sites of the site dimension."""
    from radar_assets.defs.partitions import sites_partitions

    for s in sorted(instance().get_dynamic_partitions(sites_partitions.name)):
        click.echo(s)
