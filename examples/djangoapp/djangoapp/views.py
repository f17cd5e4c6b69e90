from django.http import HttpResponse, JsonResponse


def index(request):
    return HttpResponse("Hello from Django!", content_type="text/plain")


def info(request):
    return JsonResponse({"method": request.method, "path": request.path,
                         "query": request.GET.dict()})
