mkdir emptydir
