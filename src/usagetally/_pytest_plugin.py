"""The usagetally pytest plugin (work in progress)."""
