from typing import List

from fastapi import Depends, FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from . import crud, schemas
from .db import get_db

app = FastAPI(title="Simple FastAPI + Async SQLAlchemy example")


@app.get("/items", response_model=List[schemas.Item])
async def read_items(db: AsyncSession = Depends(get_db)):
    return await crud.get_items(db)


# No status_code: FastAPI's default 200, as in the document's hey output ("[200] 1000 responses").
@app.post("/items", response_model=schemas.Item)
async def create_item(item: schemas.ItemCreate, db: AsyncSession = Depends(get_db)):
    return await crud.create_item(db, item)
