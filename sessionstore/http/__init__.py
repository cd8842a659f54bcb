"""What every HTTP face of sessionstore shares: the admin API, the console and the middleware.

problems     RFC 9457 problem+json bodies, the one shape of every HTTP error it answers
credentials  where a request's token is read (``Authorization: Bearer``, a cookie), and the
             one rule for a credential given twice: refused, the same way everywhere
origin       where a request comes from: the one cross-site rule, and the one constant-time
             compare of synchronizer (CSRF) tokens

No framework and no I/O here: each face reads its own request and answers in its own way.
"""

__all__: list[str] = []
