"""The API's routers, one per PAI resource."""
