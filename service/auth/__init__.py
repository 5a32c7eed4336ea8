"""Who is calling: bearer tokens, roles and the tenant each token belongs to."""

from service.auth.principal import Principal, Role
from service.auth.tokens import TokenVerifier, mint_dev_token

__all__ = ["Principal", "Role", "TokenVerifier", "mint_dev_token"]
