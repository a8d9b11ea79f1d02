i=0; while [ $i -lt 3 ]; do yes "line $i pybuild differential payload" | head -c 7000000; i=$((i+1)); done > big.bin
