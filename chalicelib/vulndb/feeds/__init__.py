"""Vulnerability feeds: readers that turn each supported feed into what the index stores, the
walk that recognises them among `db build` inputs (`loader`), and the download of OSV's exports
(`osv_download`). No AWS in here: the refresh function in AWS calls these like the CLI does."""
