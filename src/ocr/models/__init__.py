"""Model: timm encoder -> FPN decoder -> DB head, trained with the DB loss."""
