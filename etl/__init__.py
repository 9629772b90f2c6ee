"""ETL: load delivered cadastral, planning and price files into the platform database."""
