"""Server-rendered pages: thin routes over the same services as the JSON API."""
