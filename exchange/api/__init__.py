"""The HTTP API: app factory, authentication, authorisation, problem details, routers."""
