from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from . import models, schemas


async def get_items(db: AsyncSession):
    # Every row, unordered and unbounded: the document's GET has no paging.
    result = await db.execute(select(models.Item))
    return result.scalars().all()


async def create_item(db: AsyncSession, item: schemas.ItemCreate):
    db_item = models.Item(name=item.name, description=item.description)
    db.add(db_item)
    await db.commit()
    await db.refresh(db_item)
    return db_item
