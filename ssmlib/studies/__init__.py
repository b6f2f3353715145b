"""Studies: run many, evaluate with the shared evaluator, write ``results/<study>/``, load for the book.

``i2a_campaign``: the I2A campaign's design (claims 4 and 5). The model zoo's campaign (``ssmlib.campaign``),
the zoo, jumpy and I2A pilot studies move here as the redesign goes on.
"""
