"""The async engine, the session factory and the declarative base (SQLAlchemy async + asyncpg)."""
import os

from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import declarative_base, sessionmaker


def async_url(url: str) -> str:
    """The bench passes postgres://… or postgresql://…; SQLAlchemy needs the asyncpg dialect named."""
    for scheme in ("postgres://", "postgresql://"):
        if url.startswith(scheme):
            return "postgresql+asyncpg://" + url[len(scheme):]
    return url


if not os.environ.get("DATABASE_URL"):
    raise RuntimeError("DATABASE_URL is not set (e.g. postgres://user:password@127.0.0.1:5432/items)")

DATABASE_URL = async_url(os.environ["DATABASE_URL"])

# The document sets no pool options, so each worker process has SQLAlchemy's defaults:
# pool_size=5, max_overflow=10, pool_timeout=30 s. Kept as they are: this is the baseline.
engine = create_async_engine(DATABASE_URL)

# sessionmaker(class_=AsyncSession) rather than async_sessionmaker: the latter is SQLAlchemy 2 only,
# and Debian 12 ships SQLAlchemy 1.4.
AsyncSessionLocal = sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)

Base = declarative_base()


async def get_db():
    async with AsyncSessionLocal() as session:
        yield session
