"""charrnn"""
