# git ignores __pycache__ directories, so the case makes the one its **/__pycache__ pattern excludes
mkdir -p b/__pycache__ keep/__pycache__
echo cached > b/__pycache__/mod.cpython-311.pyc
echo kept > keep/__pycache__/kept.pyc
