"""Vulnerability feeds: readers that turn each supported feed into what the index stores, the
walk that recognises them among `db build` inputs (`loader`), and their download (`osv_download`:
the generic conditional, resumable download and OSV's exports; `update`: every feed `db update`
fetches). No AWS in here: the refresh function in AWS calls these like the CLI does."""
