"""Data access: the connection pool, the migrator and one repository module per aggregate.

SQL lives here and nowhere else; domain modules call these functions with a connection.
"""
