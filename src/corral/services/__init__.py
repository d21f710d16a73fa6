"""Services: what every interface (CLI, REST, pages, demo) calls; typed results in and out."""
