from pydantic import BaseModel


class ItemBase(BaseModel):
    name: str
    description: str


class ItemCreate(ItemBase):
    pass


class Item(ItemBase):
    id: int

    class Config:
        # Read the response from the ORM object. Pydantic 2 renamed this from_attributes and still
        # accepts the old name (with a warning); Debian 12 ships Pydantic 1.10, which knows only this one.
        orm_mode = True
