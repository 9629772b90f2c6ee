"""ETL: the generic machinery that loads delivered files (it knows no domain table)."""
